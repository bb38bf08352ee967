from multiprocessing import Process,Lock #导入Lock模块
import time
import  os

def work1(lock,name):
    lock.acquire()  #加锁
    print('%s开始工作'%name)
    time.sleep(0.2)
    print('%s工作完毕'%name)
    lock.release() #解锁

if __name__=='__main__':
    lock=Lock() #实例化一个lock对象出来

    p1=Process(target=work1,args=(lock,'alex',))
    p2 = Process(target=work1, args=(lock,'egon',))
    p1.start()
    p2.start()
    print('主')
